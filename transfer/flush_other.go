//go:build !linux

package transfer

import "os"

// flusher leaves writing a received file to the system here; the fsync
// at the end waits for what is left.
type flusher struct{}

func startFlusher(*os.File, int64) *flusher { return &flusher{} }
func (*flusher) written(int64)              {}
func (*flusher) stop()                      {}
