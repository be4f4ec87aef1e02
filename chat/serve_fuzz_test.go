package chat

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"slices"
	"testing"
	"time"

	"p2pd/netcore/identity"
)

// FuzzServe: whatever a peer sends on a chat stream, what is stored is
// the peer's valid messages up to the first frame that is not one, each
// once (a message sent again is acknowledged and not stored twice), in
// order and exactly as sent; every stored or repeated message gets its
// receipt; the app hears each new message once; and the history reads
// back the same from its file after a restart. The fuzzer's bytes are
// either the raw stream, or messages (id, text, time) that it frames
// as a sender would.
func FuzzServe(f *testing.F) {
	f.Add([]byte("a\x00hello\x00b\x00\xff\xfe bad utf-8\x00a\x00again"), int64(1700000000), false)
	f.Add([]byte("\x00no id"), int64(0), false)
	f.Add([]byte("x\x00line one\nline two\r\n\u2028"), int64(-62135596800), false)
	f.Add([]byte("\x00\x00\x00\x02{}"), int64(0), true)
	f.Add([]byte("\x00\x00\x00\x0e{\"receipt\":\"a\"}"), int64(0), true)
	f.Fuzz(func(t *testing.T, data []byte, unix int64, raw bool) {
		stream := data
		if !raw {
			stream = framed(data, unix)
		}
		// The model: the frames a reading of the whole stream finds.
		var want []Message
		var receipts []string
		seen := map[string]bool{}
		for r := bytes.NewReader(stream); ; {
			var fr frame
			if readFrame(r, &fr) != nil {
				break
			}
			m := fr.Msg
			if m == nil || m.ID == "" || len(m.ID) > 64 || check(m.Text) != nil {
				break
			}
			if !seen[m.ID] {
				seen[m.ID] = true
				want = append(want, *m)
			}
			receipts = append(receipts, m.ID)
		}

		dir := t.TempDir()
		store, err := OpenStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		var heard []Message
		c := New(store, func(_ identity.ID, m Message) { heard = append(heard, m) })
		var out bytes.Buffer
		peer := identity.ID{1}
		c.serve(peer, struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(stream), &out})
		var got []string
		for {
			var fr frame
			if readFrame(&out, &fr) != nil {
				break
			}
			got = append(got, fr.Receipt)
		}
		if !slices.Equal(got, receipts) {
			t.Fatalf("receipts %q, want %q", got, receipts)
		}
		if !sameMessages(heard, want) {
			t.Fatalf("the app heard %v, want %v", heard, want)
		}
		lines, err := store.History(peer)
		if err != nil {
			t.Fatal(err)
		}
		store.Close()
		again, err := OpenStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer again.Close()
		reread, err := again.History(peer)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range [][]Line{lines, reread} {
			var msgs []Message
			for _, l := range h {
				if l.Out || l.Delivered {
					t.Fatalf("a received message is marked as ours: %+v", l)
				}
				msgs = append(msgs, l.Message)
			}
			if !sameMessages(msgs, want) {
				t.Fatalf("the history holds %v, want %v", msgs, want)
			}
		}
	})
}

// framed makes a sender's stream of messages from data: NUL-separated
// pairs of id and text, each with a time a second after the last.
func framed(data []byte, unix int64) []byte {
	parts := bytes.Split(data, []byte{0})
	var out bytes.Buffer
	for i := 0; i+1 < len(parts); i += 2 {
		m := Message{ID: string(parts[i]), Text: string(parts[i+1]), Time: time.Unix(unix+int64(i), 0).UTC()}
		b, err := json.Marshal(frame{Msg: &m})
		if err != nil {
			continue // a time JSON cannot carry: a sender could not send it either
		}
		out.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
		out.Write(b)
	}
	return out.Bytes()
}

func sameMessages(a, b []Message) bool {
	return slices.EqualFunc(a, b, func(x, y Message) bool {
		return x.ID == y.ID && x.Text == y.Text && x.Time.Equal(y.Time)
	})
}
