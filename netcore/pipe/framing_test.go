package pipe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"testing"
)

// pieces is a reader that hands out data in the sizes cuts gives (a
// zero now and then, as a read cut short by a deadline returns), with
// io.EOF on the read that returns the last bytes when eofWithData.
type pieces struct {
	data        []byte
	cuts        []byte
	eofWithData bool
}

func (p *pieces) Read(b []byte) (int, error) {
	if len(p.data) == 0 {
		return 0, io.EOF
	}
	n := len(p.data)
	if len(p.cuts) > 0 {
		n = int(p.cuts[0]) * 3 // 0 to 765 bytes
		p.cuts = p.cuts[1:]
	}
	n = min(n, len(b), len(p.data))
	copy(b, p.data[:n])
	p.data = p.data[n:]
	if len(p.data) == 0 && p.eofWithData {
		return n, io.EOF
	}
	return n, nil
}

// decodeAll runs d over r as a pipe does, to the end of the stream or
// the first error.
func decodeAll(d decoder, r io.Reader) ([][]byte, error) {
	var got [][]byte
	deliver := func(b *buffer) { got = append(got, slices.Clone(b.b)) }
	for reads := 0; ; reads++ {
		if reads > 1<<20 {
			return got, errors.New("the decoder makes no progress")
		}
		err := d.read(r, deliver)
		if err == io.EOF {
			return got, d.eof(deliver)
		}
		if err != nil {
			return got, err
		}
	}
}

// wantFrames is the plain reading of a stream of length-prefixed frames.
func wantFrames(data []byte, max int) ([][]byte, error) {
	var out [][]byte
	for len(data) > 0 {
		if len(data) < frameHeader {
			return out, ErrTruncated
		}
		size := binary.BigEndian.Uint32(data)
		if uint64(size) > uint64(max) {
			return out, ErrFrameTooLarge
		}
		if uint64(len(data)-frameHeader) < uint64(size) {
			return out, ErrTruncated
		}
		out = append(out, data[frameHeader:frameHeader+int(size)])
		data = data[frameHeader+int(size):]
	}
	return out, io.EOF
}

// wantLines is the plain reading of a stream of lines: "\n" ends one, a
// "\r" before it is dropped, and the last may have no "\n".
func wantLines(data []byte, max int) ([][]byte, error) {
	var out [][]byte
	for len(data) > 0 {
		line, rest, found := bytes.Cut(data, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > max {
			return out, ErrFrameTooLarge
		}
		if found || len(line) > 0 {
			out = append(out, line)
		}
		data = rest
	}
	return out, io.EOF
}

// FuzzDecoders: however the stream is cut into reads, the frame and line
// decoders deliver what a plain reading of the whole stream finds, and
// end the same way (the stream's end, a truncated frame, or one over the
// limit). Their read buffers are made small so that frames and lines
// longer than the buffer, which take another path, come up often.
func FuzzDecoders(f *testing.F) {
	frame := func(s string) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...)
	}
	f.Add(slices.Concat(frame("hello"), frame(""), frame("a longer frame than the buffer")), []byte{1, 2, 3, 0, 9}, uint16(64), uint8(16), false)
	f.Add(slices.Concat(frame("ok"), []byte{0, 0, 1}), []byte{2}, uint16(64), uint8(8), true)
	f.Add(frame("too long for the limit"), []byte{}, uint16(5), uint8(8), false)
	f.Add([]byte("one\r\ntwo\n\nthree without end"), []byte{1, 0, 4}, uint16(64), uint8(5), true)
	f.Add([]byte("a line far longer than the limit\n"), []byte{3}, uint16(10), uint8(4), false)
	f.Add([]byte("exactly ten\r\n"), []byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, uint16(11), uint8(4), false)
	f.Fuzz(func(t *testing.T, data, cuts []byte, max uint16, bufSize uint8, eofWithData bool) {
		size := int(bufSize%64) + frameHeader // at least a header
		for _, c := range []struct {
			name string
			d    decoder
			want func([]byte, int) ([][]byte, error)
		}{
			{"frames", &frameDecoder{max: int(max), buf: make([]byte, size)}, wantFrames},
			{"lines", &lineDecoder{max: int(max), buf: make([]byte, size)}, wantLines},
		} {
			got, err := decodeAll(c.d, &pieces{data: data, cuts: slices.Clone(cuts), eofWithData: eofWithData})
			want, wantErr := c.want(data, int(max))
			if !errors.Is(err, wantErr) {
				t.Fatalf("%s: ended with %v, want %v", c.name, err, wantErr)
			}
			if len(got) != len(want) {
				t.Fatalf("%s: %d messages, want %d: %q, want %q", c.name, len(got), len(want), got, want)
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("%s: message %d is %q, want %q", c.name, i, got[i], want[i])
				}
			}
		}
	})
}
