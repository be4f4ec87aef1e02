package transfer

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path"
	"strings"
	"testing"
)

// FuzzReceiveFile: whatever a sender's stream holds, receiveFile keeps to
// the model of the protocol. The fuzzer's plan makes a stream of chunks,
// each with its data (or none, for zeros), its digest right or damaged,
// and the file's digest after them, cut off anywhere; or raw bytes. The
// file gets its name only when every chunk and the file's digest check
// out and the offered size arrived, with exactly the data sent; otherwise
// the part file holds the chunks verified before the fault, and the next
// attempt resumes after exactly those.
func FuzzReceiveFile(f *testing.F) {
	f.Add([]byte("hello, world"), []byte{5, 0, 7, 0}, uint16(12), uint16(0xffff), false)
	f.Add([]byte("hello, world"), []byte{5, 0, 7, 0}, uint16(13), uint16(0xffff), false) // short
	f.Add([]byte("hello, world"), []byte{5, 2, 7, 0}, uint16(12), uint16(0xffff), false) // damaged chunk
	f.Add([]byte("hello, world"), []byte{5, 0, 7, 4}, uint16(12), uint16(0xffff), false) // damaged file digest
	f.Add([]byte("abc"), []byte{3, 0, 9, 1, 0, 0}, uint16(12), uint16(0xffff), false)    // zeros
	f.Add([]byte("hello, world"), []byte{5, 0, 7, 0}, uint16(8), uint16(0xffff), false)  // too much
	f.Add([]byte("hello, world"), []byte{5, 0, 7, 0}, uint16(12), uint16(40), false)     // cut off
	f.Add([]byte("\x00\x00\x00\x05"), []byte{}, uint16(5), uint16(0xffff), true)         // raw
	buf := make([]byte, ChunkSize)
	f.Fuzz(func(t *testing.T, data, plan []byte, size, cut uint16, raw bool) {
		// The model: what the stream is, and what receiving it must give.
		var (
			stream   []byte
			content  []byte // what the file holds after each verified chunk
			verified int64
			ok       bool
			ended    bool           // the model met the end of the stream or a fault
			whole    = newFileSum() // over the digests of the chunks as sent
		)
		if raw {
			stream = data
			ended = true // raw bytes never pass a digest: nothing is verified
		}
		for len(plan) >= 2 && !ended {
			n, flags := int(plan[0]), plan[1]
			plan = plan[2:]
			zero, damaged, last := flags&1 != 0, flags&2 != 0, n == 0
			if last {
				sum := whole.sum()
				if flags&4 != 0 {
					sum[0] ^= 1
				}
				stream = appendChunk(stream, nil, sum, false)
				ok = int64(len(content)) == int64(size) && flags&4 == 0
				ended = true
				break
			}
			var chunk []byte
			if zero {
				chunk = make([]byte, n)
			} else {
				chunk = bytes.Repeat(data[:min(len(data), n)], 1)
				chunk = append(chunk, make([]byte, n-len(chunk))...)
			}
			sum := chunkSum(chunk)
			if damaged {
				sum[0] ^= 1
			}
			stream = appendChunk(stream, chunk, sum, zero)
			if damaged || int64(len(content)+n) > int64(size) {
				ended = true
				break
			}
			content = append(content, chunk...)
			whole.add(sum)
		}
		if int(cut) < len(stream) {
			stream = stream[:cut]
			ok = false
		}
		if ok {
			verified = int64(len(content))
		} else {
			verified = verifiedBefore(stream, int64(size))
		}

		root, err := os.OpenRoot(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		name, err := receiveFile(bytes.NewReader(stream), root, "id", "f.bin", int64(size), 0, buf, &meter{}, func() bool { return true })
		if (err == nil) != ok {
			t.Fatalf("receiving gave %q, %v; the model says ok=%v", name, err, ok)
		}
		if ok {
			got, err := root.ReadFile(name)
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("the file holds %q (%v), want %q", got, err, content)
			}
			if _, err := root.Stat(name + partSuffix); err == nil {
				t.Error("the part file is left beside the received one")
			}
			return
		}
		if _, err := root.Stat("f.bin"); err == nil {
			t.Fatalf("a file got its name although receiving failed: %v", err)
		}
		part, err := root.ReadFile("f.bin" + partSuffix)
		if err != nil {
			if strings.Contains(err.Error(), "no such file") && verified == int64(size) {
				return // a whole file with a bad digest: dropped, to be sent again
			}
			t.Fatalf("no part file after a failure: %v", err)
		}
		if int64(len(part)) < verified || !bytes.Equal(part[:verified], expected(stream)[:verified]) {
			t.Fatalf("the part file holds %d bytes, want the %d verified ones first", len(part), verified)
		}
		if got := resumable(root, "id", "f.bin", int64(size)); got != verified {
			side, _ := root.ReadFile("f.bin" + partState)
			t.Fatalf("the next attempt would resume from %d, want %d (state %q)", got, verified, side)
		}
	})
}

// appendChunk appends a chunk as writeChunk sends it.
func appendChunk(b, data []byte, sum digest, zero bool) []byte {
	n := uint32(len(data))
	if zero {
		n |= zeroFlag
	}
	b = binary.BigEndian.AppendUint32(b, n)
	b = append(b, sum[:]...)
	if !zero {
		b = append(b, data...)
	}
	return b
}

// wireChunks parses a stream the way readChunk does, up to the first
// incomplete chunk, and gives each chunk's data, digest and end.
func wireChunks(stream []byte) (chunks [][]byte, sums []digest) {
	for len(stream) >= 4+digestSize {
		size := binary.BigEndian.Uint32(stream)
		zero := size&zeroFlag != 0
		size &^= zeroFlag
		if size > ChunkSize {
			return
		}
		var sum digest
		copy(sum[:], stream[4:])
		stream = stream[4+digestSize:]
		var data []byte
		if zero {
			data = make([]byte, size)
		} else {
			if len(stream) < int(size) {
				return
			}
			data, stream = stream[:size], stream[size:]
		}
		chunks, sums = append(chunks, data), append(sums, sum)
		if size == 0 {
			return
		}
	}
	return
}

// verifiedBefore is how many bytes of a stream pass their chunk digests,
// within size, before the first that does not (or the stream's end).
func verifiedBefore(stream []byte, size int64) int64 {
	chunks, sums := wireChunks(stream)
	var v int64
	for i, c := range chunks {
		if len(c) == 0 || chunkSum(c) != sums[i] || v+int64(len(c)) > size {
			break
		}
		v += int64(len(c))
	}
	return v
}

// expected is the data a stream's chunks carry, in order.
func expected(stream []byte) []byte {
	chunks, _ := wireChunks(stream)
	var out []byte
	for _, c := range chunks {
		out = append(out, c...)
	}
	return out
}

// FuzzCheckOffer: whatever offer a peer sends (as JSON), check accepts it
// only with names that are clean, distinct (whatever their case), none a
// folder of another nor another file's partial file, and sizes that add
// up to the offer's total; and it never panics.
func FuzzCheckOffer(f *testing.F) {
	f.Add([]byte(`{"id":"o","files":[{"path":"a.txt","size":3},{"path":"d/b","size":0}],"total":3}`))
	f.Add([]byte(`{"id":"o","files":[{"path":"x","size":1},{"path":"x/y","size":1}],"total":2}`))
	f.Add([]byte(`{"id":"o","files":[{"path":"A","size":1},{"path":"a","size":1}],"total":2}`))
	f.Add([]byte(`{"id":"o","files":[{"path":"a.p2pd-part","size":1}],"total":1}`))
	f.Add([]byte(`{"id":"o","files":[{"path":"../x","size":-1}],"total":-1}`))
	f.Add([]byte(`{"files":[]}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		var o Offer
		if json.Unmarshal(data, &o) != nil {
			return
		}
		root, names, have, why := check(dir, o)
		if why != "" {
			return
		}
		defer root.Close()
		if len(names) != len(o.Files) || len(have) != len(o.Files) {
			t.Fatalf("%d names and %d verified counts for %d files", len(names), len(have), len(o.Files))
		}
		var total int64
		lower := map[string]bool{}
		for i, name := range names {
			if clean, err := CleanName(o.Files[i].Path); err != nil || clean != name {
				t.Fatalf("accepted %q as %q (%v)", o.Files[i].Path, name, err)
			}
			if lower[strings.ToLower(name)] {
				t.Fatalf("accepted %q twice", name)
			}
			lower[strings.ToLower(name)] = true
			for _, part := range strings.Split(strings.ToLower(name), "/") {
				if strings.HasSuffix(part, partSuffix) || strings.HasSuffix(part, partState) {
					t.Fatalf("accepted a partial file's name %q", name)
				}
			}
			if have[i] < 0 || have[i] > o.Files[i].Size {
				t.Fatalf("%q: %d verified of %d", name, have[i], o.Files[i].Size)
			}
			total += o.Files[i].Size
		}
		for _, name := range names {
			for d := path.Dir(name); d != "."; d = path.Dir(d) {
				if lower[strings.ToLower(d)] {
					t.Fatalf("accepted %q as a file and a folder", d)
				}
			}
		}
		if total != o.Total {
			t.Fatalf("accepted a total of %d for files of %d", o.Total, total)
		}
	})
}
