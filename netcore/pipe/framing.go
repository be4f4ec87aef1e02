package pipe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Framing is how a TCP pipe cuts its byte stream into messages. UDP pipes
// always deliver one message per datagram.
type Framing uint8

const (
	// Raw delivers the stream in chunks as they arrive; a chunk boundary
	// carries no meaning. Nothing is added on send.
	Raw Framing = iota
	// Frames delivers length-prefixed frames: a 4-byte big-endian length,
	// then that many bytes. Frames over the size limit end the pipe.
	Frames
	// Lines delivers newline-terminated lines without the "\n" (or "\r\n");
	// Send appends "\n". Lines over the size limit end the pipe.
	Lines
)

// String names the framing: "raw", "frames" or "lines".
func (f Framing) String() string {
	switch f {
	case Raw:
		return "raw"
	case Frames:
		return "frames"
	case Lines:
		return "lines"
	}
	return fmt.Sprintf("Framing(%d)", uint8(f))
}

const (
	// DefaultMaxFrame bounds frames and lines from peers: big enough for any
	// control message or file chunk, small enough that a hostile length
	// cannot make us allocate much.
	DefaultMaxFrame = 1 << 20
	// readBufSize is the socket read size: 64 KiB moves bulk data with few
	// system calls (loopback and TSO hand over segments this large).
	readBufSize = 64 << 10
	// maxDatagram is the largest UDP payload IPv4 can carry.
	maxDatagram = 65507
	frameHeader = 4
)

// Errors a pipe ends with or a send returns.
var (
	// ErrFrameTooLarge: a frame or line exceeded the pipe's size limit.
	ErrFrameTooLarge = errors.New("message exceeds the size limit")
	// ErrTruncated: the peer closed the connection in the middle of a frame.
	ErrTruncated = errors.New("peer closed the connection in the middle of a message")
)

// decoder cuts a byte stream into messages. It keeps partial messages
// between reads, so a read cut short by a deadline loses nothing and the
// next read, by any goroutine, carries on where it stopped.
type decoder interface {
	// read does one Read from r and delivers every message it completes;
	// deliver owns the buffer it is given.
	read(r io.Reader, deliver func(*buffer)) error
	// eof says how the stream may end here: io.EOF, or ErrTruncated if it
	// stops inside a message. A trailing line without "\n" is delivered.
	eof(deliver func(*buffer)) error
}

func (f Framing) decoder(max int) decoder {
	switch f {
	case Frames:
		return &frameDecoder{max: max, buf: make([]byte, readBufSize)}
	case Lines:
		return &lineDecoder{max: max, buf: make([]byte, readBufSize)}
	}
	return &rawDecoder{}
}

// rawDecoder delivers each read as a message. It reads into a pooled
// chunk-sized buffer and hands that buffer over when a read fills much of
// it; small reads are copied out so the big buffer is reused.
type rawDecoder struct{ chunk *buffer }

func (d *rawDecoder) read(r io.Reader, deliver func(*buffer)) error {
	if d.chunk == nil {
		d.chunk = getBuffer(readBufSize)
	}
	n, err := r.Read(d.chunk.b[:readBufSize])
	switch {
	case n >= readBufSize/4:
		d.chunk.b = d.chunk.b[:n]
		deliver(d.chunk)
		d.chunk = nil
	case n > 0:
		deliver(copyBuffer(d.chunk.b[:n]))
	}
	return err
}

func (d *rawDecoder) eof(func(*buffer)) error { return io.EOF }

func copyBuffer(b []byte) *buffer {
	out := getBuffer(len(b))
	copy(out.b, b)
	return out
}

// frameDecoder reads length-prefixed frames. Frames that fit the read
// buffer are parsed from it; a bigger one is read straight into its own
// buffer.
type frameDecoder struct {
	max      int
	buf      []byte
	r, w     int     // unparsed bytes are buf[r:w]
	body     *buffer // a big frame being filled
	bodyDone int
}

func (d *frameDecoder) read(r io.Reader, deliver func(*buffer)) error {
	if d.body != nil {
		n, err := r.Read(d.body.b[d.bodyDone:])
		if d.bodyDone += n; d.bodyDone == len(d.body.b) {
			deliver(d.body)
			d.body = nil
		}
		return err
	}
	if d.r > 0 { // keep the partial frame at the front
		d.w = copy(d.buf, d.buf[d.r:d.w])
		d.r = 0
	}
	n, err := r.Read(d.buf[d.w:])
	d.w += n
	for d.w-d.r >= frameHeader {
		announced := binary.BigEndian.Uint32(d.buf[d.r:])
		if uint64(announced) > uint64(d.max) {
			return fmt.Errorf("%w: peer announced a %d-byte frame, limit %d", ErrFrameTooLarge, announced, d.max)
		}
		size := int(announced)
		have := d.w - d.r - frameHeader
		if have >= size {
			start := d.r + frameHeader
			deliver(copyBuffer(d.buf[start : start+size]))
			d.r = start + size
			continue
		}
		if frameHeader+size > len(d.buf) {
			d.body = getBuffer(size)
			d.bodyDone = copy(d.body.b, d.buf[d.r+frameHeader:d.w])
			d.r, d.w = 0, 0
		}
		break
	}
	return err
}

func (d *frameDecoder) eof(func(*buffer)) error {
	switch {
	case d.body != nil:
		return fmt.Errorf("%w (%d of %d bytes)", ErrTruncated, d.bodyDone, len(d.body.b))
	case d.w-d.r >= frameHeader:
		return fmt.Errorf("%w (%d of %d bytes)", ErrTruncated, d.w-d.r-frameHeader, binary.BigEndian.Uint32(d.buf[d.r:]))
	case d.w > d.r:
		return fmt.Errorf("%w (%d of %d header bytes)", ErrTruncated, d.w-d.r, frameHeader)
	}
	return io.EOF
}

// lineDecoder reads newline-terminated lines; a line longer than the read
// buffer is assembled in long.
type lineDecoder struct {
	max  int
	buf  []byte
	r, w int
	long []byte
}

func (d *lineDecoder) read(r io.Reader, deliver func(*buffer)) error {
	if d.r > 0 {
		d.w = copy(d.buf, d.buf[d.r:d.w])
		d.r = 0
	}
	n, err := r.Read(d.buf[d.w:])
	d.w += n
	for {
		i := bytes.IndexByte(d.buf[d.r:d.w], '\n')
		if i < 0 {
			break
		}
		line := d.buf[d.r : d.r+i]
		d.r += i + 1
		if d.long != nil {
			line, d.long = append(d.long, line...), nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > d.max {
			return fmt.Errorf("%w: line longer than %d bytes", ErrFrameTooLarge, d.max)
		}
		deliver(copyBuffer(line))
	}
	if d.r == 0 && d.w == len(d.buf) { // no newline in a full buffer
		d.long = append(d.long, d.buf[:d.w]...)
		d.w = 0
		if len(d.long) > d.max+1 { // +1: a "\r" may still be stripped
			return fmt.Errorf("%w: line longer than %d bytes", ErrFrameTooLarge, d.max)
		}
	}
	return err
}

func (d *lineDecoder) eof(deliver func(*buffer)) error {
	rest := bytes.TrimSuffix(append(d.long, d.buf[d.r:d.w]...), []byte("\r"))
	d.long, d.r, d.w = nil, 0, 0
	if len(rest) > d.max {
		return fmt.Errorf("%w: line longer than %d bytes", ErrFrameTooLarge, d.max)
	}
	if len(rest) > 0 {
		deliver(copyBuffer(rest))
	}
	return io.EOF
}

// envelope returns what framing f writes before and after msg; hdr is
// scratch space for a frame header.
func (f Framing) envelope(msg []byte, max int, hdr *[frameHeader]byte) (pre, post []byte, err error) {
	switch f {
	case Frames:
		if len(msg) > max {
			return nil, nil, fmt.Errorf("%w: %d-byte frame, limit %d", ErrFrameTooLarge, len(msg), max)
		}
		binary.BigEndian.PutUint32(hdr[:], uint32(len(msg)))
		return hdr[:], nil, nil
	case Lines:
		if len(msg) > max {
			return nil, nil, fmt.Errorf("%w: %d-byte line, limit %d", ErrFrameTooLarge, len(msg), max)
		}
		if bytes.IndexByte(msg, '\n') >= 0 {
			return nil, nil, errors.New("a message sent as a line cannot contain a newline")
		}
		return nil, newline, nil
	}
	return nil, nil, nil
}

var newline = []byte("\n")
