// Package transfer is the file transfer protocol ("transfer/1"): one
// stream of a secure session (netcore/session) carries an offer of files
// and folders, the receiver's answer, and the files in verified chunks.
//
// On the stream, the sender writes an Offer; the receiver answers with an
// Answer that accepts or declines it and says, per file, how many bytes it
// already holds from an earlier, interrupted attempt at the same offer.
// The sender then streams each file from there in chunks, each with its
// BLAKE3 digest, and ends each file with the file's digest (over its
// chunks' digests), which the receiver checks before it gives the file its
// name. Names from the
// sender are checked (CleanName) and written through os.Root, so they
// never leave the download folder; an existing file is never
// overwritten ("name (1).ext" instead). An interrupted transfer keeps its
// verified part beside the target ("name.p2pd-part"), and the same offer
// sent again resumes from it.
package transfer

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Proto is the stream protocol name.
const Proto = "transfer/1"

const (
	// ChunkSize is the largest chunk: big enough that the per-chunk
	// header and hash cost nothing, small enough that a resumed transfer
	// loses little.
	ChunkSize = 1 << 20
	// maxHeader bounds an offer or answer.
	maxHeader = 4 << 20
	// maxFiles bounds the files in one offer.
	maxFiles = 100_000
	// maxSize bounds one offered file (and the offer): 1 PiB, past any
	// disk, and far from overflowing a sum.
	maxSize = 1 << 50
	// chunkTimeout bounds waiting for the next chunk: a sender that stops
	// without closing must not hold the file forever.
	chunkTimeout = time.Minute
)

// File is one file of an offer.
type File struct {
	Path string `json:"path"` // relative, "/"-separated; checked by CleanName
	Size int64  `json:"size"`
}

// Offer is what a sender proposes.
type Offer struct {
	// ID names the offer: the same files offered again (after a dropped
	// connection) have the same ID, which is what lets the receiver
	// resume.
	ID    string `json:"id"`
	Files []File `json:"files"`
	Total int64  `json:"total"`
}

// Answer is the receiver's reply to an offer.
type Answer struct {
	Accept bool   `json:"accept"`
	Reason string `json:"reason,omitempty"` // why declined
	// Busy: declined for now (the same files are being received); the
	// sender may offer them again later.
	Busy bool    `json:"busy,omitempty"`
	Have []int64 `json:"have,omitempty"` // per file, verified bytes already held
}

// Result is the receiver's last word, after the files.
type Result struct {
	OK    bool     `json:"ok"`
	Error string   `json:"error,omitempty"`
	Saved []string `json:"saved,omitempty"` // where the files went, relative to the folder
	// Cancelled: the receiver's user cancelled (Receiver.Cancel).
	Cancelled bool `json:"cancelled,omitempty"`
}

// Progress reports a transfer as it goes.
type Progress struct {
	ID    string
	File  string        // the file being moved
	Done  int64         // bytes done in the whole offer (resumed ones included)
	Total int64         // bytes in the whole offer
	Rate  float64       // bytes per second moved in this attempt
	ETA   time.Duration // at that rate
}

// Errors a transfer ends with, each its own reason.
var (
	// ErrDeclined: the receiver declined the offer.
	ErrDeclined = errors.New("the receiver declined")
	// ErrBusy: the receiver is still receiving these files (an earlier
	// attempt it has not given up on yet); offer them again later.
	ErrBusy = errors.New("the receiver is busy with these files")
	// ErrCancelled: the receiver cancelled the transfer while it ran.
	ErrCancelled = errors.New("the transfer was cancelled")
	// ErrChanged: a file was written to after it was offered, or while it
	// was sent (not only appended to); the receiver did not keep it.
	// Sending it again sends it as it is then.
	ErrChanged = errors.New("a file changed as it was sent")
)

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func readJSON(r io.Reader, v any) error {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxHeader {
		return fmt.Errorf("a header of %d bytes (at most %d)", size, maxHeader)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// A chunk on the wire: 4 octets of length, the chunk's digest, the data.
// The length's top bit marks a chunk of zeros, sent without its data
// (the holes of sparse files, runs of zeros in disk images). Length 0
// ends a file; the digest after it is the file's (fileSum).
const zeroFlag = 1 << 31

func writeChunk(w io.Writer, data []byte, sum digest, zero bool) error {
	var hdr [4 + digestSize]byte
	n := uint32(len(data))
	if zero {
		n |= zeroFlag
	}
	binary.BigEndian.PutUint32(hdr[:4], n)
	copy(hdr[4:], sum[:])
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	if zero {
		return nil
	}
	_, err := w.Write(data)
	return err
}

// readChunk reads a chunk into buf; a chunk of zeros fills buf[:n] with
// zeros.
func readChunk(r io.Reader, buf []byte) (n int, sum digest, zero bool, err error) {
	var hdr [4 + digestSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, sum, false, err
	}
	size := binary.BigEndian.Uint32(hdr[:4])
	zero = size&zeroFlag != 0
	size &^= zeroFlag
	copy(sum[:], hdr[4:])
	if size > ChunkSize {
		return 0, sum, false, fmt.Errorf("a chunk of %d bytes (at most %d)", size, ChunkSize)
	}
	if zero {
		clear(buf[:size])
		return int(size), sum, true, nil
	}
	_, err = io.ReadFull(r, buf[:size])
	return int(size), sum, false, err
}

// meter turns byte counts into Progress reports, one per chunk (a user
// interface that wants fewer takes every n-th).
type meter struct {
	id     string
	total  int64
	done   int64
	start  time.Time
	base   int64 // done when this attempt started
	report func(Progress)
}

func (m *meter) add(file string, n int64) {
	m.done += n
	if m.report == nil {
		return
	}
	p := Progress{ID: m.id, File: file, Done: m.done, Total: m.total}
	if secs := time.Since(m.start).Seconds(); secs > 0 {
		p.Rate = float64(m.done-m.base) / secs
	}
	if p.Rate > 0 {
		p.ETA = time.Duration(float64(m.total-m.done) / p.Rate * float64(time.Second))
	}
	m.report(p)
}
