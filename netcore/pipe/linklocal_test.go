package pipe

import (
	"fmt"
	"net/netip"
	"testing"

	"p2pd/netcore/netif"
	"p2pd/netcore/netns/netnstest"
)

// TestLinkLocalAcrossVeth connects two network namespaces with a veth pair
// that has only IPv6 link-local addresses, then echoes over TCP and UDP from
// one to the other. The server binds the route netif found for its side;
// the client reaches it through its own interface's zone.
func TestLinkLocalAcrossVeth(t *testing.T) {
	nsA := netnstest.New(t, "llA")
	nsB := netnstest.New(t, "llB")
	netnstest.IP(t, "-n", nsA, "link", "add", "vA", "type", "veth", "peer", "name", "vB", "netns", nsB)
	netnstest.IP(t, "-n", nsA, "link", "set", "vA", "up")
	netnstest.IP(t, "-n", nsB, "link", "set", "vB", "up")
	netnstest.WaitLinkLocal(t, nsA, "vA")
	netnstest.WaitLinkLocal(t, nsB, "vB")

	for _, proto := range []Proto{TCP, UDP} {
		t.Run(proto.String(), func(t *testing.T) {
			var srv *Pipe
			netnstest.Do(t, nsB, func() error {
				ifc, err := netif.ByName("vB", netif.Options{})
				if err != nil {
					return err
				}
				if len(ifc.Routes) != 1 {
					return fmt.Errorf("vB routes = %+v, want one link-local route", ifc.Routes)
				}
				bind, err := ifc.Routes[0].BindLinkLocal(0)
				if err != nil {
					return err
				}
				srv, err = Listen(testCtx(t), proto, bind, WithFraming(Frames), WithMsgHandler(echo))
				return err
			})
			defer srv.Close()
			if srv.LocalAddr().Addr().Zone() != "vB" {
				t.Fatalf("server bound to %v, want a zone of vB", srv.LocalAddr())
			}

			// From A the same address is reached through A's interface.
			dest := netip.AddrPortFrom(srv.LocalAddr().Addr().WithZone("vA"), srv.LocalAddr().Port())
			var cli *Pipe
			netnstest.Do(t, nsA, func() error {
				var err error
				cli, err = Open(testCtx(t), proto, dest.String(), WithFraming(Frames))
				return err
			})
			defer cli.Close()
			for i := range 3 {
				want := fmt.Sprintf("over the link %d", i)
				if err := cli.Send(testCtx(t), []byte(want), netip.AddrPort{}); err != nil {
					t.Fatal(err)
				}
				m, err := cli.Recv(testCtx(t), SubAll)
				if err != nil {
					t.Fatal(err)
				}
				if string(m.Data) != want || m.From.Addr().WithZone("") != dest.Addr().WithZone("") || m.From.Port() != dest.Port() {
					t.Errorf("got %q from %v, want %q from %v", m.Data, m.From, want, dest)
				}
			}
		})
	}
}
