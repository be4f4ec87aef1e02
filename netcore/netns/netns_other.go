//go:build !linux

// Package netns creates Linux network namespaces and runs code inside them.
// On other systems every call reports that namespaces are unavailable.
package netns

import (
	"context"
	"errors"
)

var errNotLinux = errors.New("network namespaces exist only on Linux")

// Available reports why network namespaces cannot be made here.
func Available() error { return errNotLinux }

// IP is unavailable outside Linux.
func IP(context.Context, ...string) error { return errNotLinux }

// Exec is unavailable outside Linux.
func Exec(context.Context, string, string, ...string) ([]byte, error) { return nil, errNotLinux }

// Add is unavailable outside Linux.
func Add(context.Context, string) error { return errNotLinux }

// Delete is unavailable outside Linux.
func Delete(context.Context, string) error { return errNotLinux }

// Do is unavailable outside Linux.
func Do(string, func() error) error { return errNotLinux }
