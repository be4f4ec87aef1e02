package transfer

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// benchSize is the file each benchmark round moves.
const benchSize = 64 << 20

// BenchmarkSend moves a file over a secure session between two loopback
// nodes (TLS, stream multiplexing, per-chunk and whole-file hashes, the
// write to disk); BenchmarkRawTCP moves the same file over a plain
// loopback TCP connection into a file: the baseline, compare MB/s.
func BenchmarkSend(b *testing.B) {
	src := filepath.Join(b.TempDir(), "big.bin")
	write(b, src, random(benchSize))
	dst := b.TempDir()
	sess := pair(b, &Receiver{Dir: dst, Decide: accept})
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		res, _, err := Send(context.Background(), sess, []string{src}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.Remove(filepath.Join(dst, res.Saved[0]))
		b.StartTimer()
	}
}

func BenchmarkRawTCP(b *testing.B) {
	src := filepath.Join(b.TempDir(), "big.bin")
	write(b, src, random(benchSize))
	dst := filepath.Join(b.TempDir(), "copy.bin")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		done := make(chan error, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				done <- err
				return
			}
			defer c.Close()
			out, err := os.Create(dst)
			if err != nil {
				done <- err
				return
			}
			_, err = io.Copy(out, c)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			done <- err
		}()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		in, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(c, in)
		in.Close()
		c.Close()
		if err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}
