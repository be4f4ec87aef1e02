//go:build !linux

package relay

// gsoSegment returns 0: segmented sends (GSO) are Linux's.
func gsoSegment([]byte) int { return 0 }

// gsoControl is never called where gsoSegment is always 0.
func gsoControl(int) []byte { return nil }
