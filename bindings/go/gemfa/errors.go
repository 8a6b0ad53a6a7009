package gemfa

/*
#include <gemfa.h>
*/
import "C"

import (
	"fmt"
	"io/fs"
)

// Status is a gemfa_status code. The numeric values are part of the C ABI
// and never change.
type Status int

// The status codes of gemfa.h.
const (
	StatusOK              Status = 0
	StatusInvalidArgument Status = 1
	StatusOutOfMemory     Status = 2
	StatusIO              Status = 3
	StatusFormat          Status = 4
	StatusConfig          Status = 5
	StatusTensorMissing   Status = 6
	StatusTensorShape     Status = 7
	StatusUnsupported     Status = 8
	StatusNoTokenizer     Status = 9
	StatusNoWeights       Status = 10
	StatusInvalidUTF8     Status = 11
	StatusInvalidToken    Status = 12
	StatusTemplate        Status = 13
	StatusBufferTooSmall  Status = 14
	StatusContextFull     Status = 15
	StatusCancelled       Status = 16
	StatusInternal        Status = 17
	StatusNotFound        Status = 18
	StatusModelMismatch   Status = 19 // saved data of another model or configuration
)

// String returns the library's stable name of the status, e.g.
// "GEMFA_ERR_IO" (it needs no loaded model).
func (s Status) String() string {
	return C.GoString(C.gemfa_status_name(C.gemfa_status(s)))
}

// Error is the error type of every failed libgemfa call: Code is the status,
// Message what exactly went wrong (the library's gemfa_last_error text).
//
// Compare with errors.Is against the exported sentinels:
//
//	if errors.Is(err, gemfa.ErrContextFull) { ... }
//
// A cancelled call also matches the context's error (context.Canceled or
// context.DeadlineExceeded) when a context.Context caused it.
//
// A path that does not exist (StatusNotFound: the model directory, or
// config.json, the weights or a shard inside it) matches ErrNotFound and
// fs.ErrNotExist, and also ErrIO, which libgemfa 0.1.0 returned for it:
//
//	if errors.Is(err, fs.ErrNotExist) { ... }
//
// The library reports a status, not errno; any other failure to read a file
// that exists matches ErrIO only.
type Error struct {
	Code    Status
	Message string
	closed  bool  // the binding refused a call on a closed object
	cause   error // what made a cancellation happen, if known
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "gemfa: " + e.Code.String()
	}
	return "gemfa: " + e.Code.String() + ": " + e.Message
}

// Is reports whether target is the sentinel of e's status code (or ErrClosed
// for calls on closed objects). A StatusNotFound error also matches ErrIO.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	if t == ErrClosed {
		return e.closed
	}
	if t.Message != "" || t.closed {
		return false
	}
	return t.Code == e.Code || (e.Code == StatusNotFound && t.Code == StatusIO)
}

// Unwrap returns the cause of a cancellation (a context's error),
// fs.ErrNotExist for StatusNotFound, or nil.
func (e *Error) Unwrap() error {
	if e.cause == nil && e.Code == StatusNotFound {
		return fs.ErrNotExist
	}
	return e.cause
}

// Sentinel errors, one per status code, for errors.Is.
var (
	ErrInvalidArgument = &Error{Code: StatusInvalidArgument}
	ErrOutOfMemory     = &Error{Code: StatusOutOfMemory}
	ErrIO              = &Error{Code: StatusIO}
	ErrFormat          = &Error{Code: StatusFormat}
	ErrConfig          = &Error{Code: StatusConfig}
	ErrTensorMissing   = &Error{Code: StatusTensorMissing}
	ErrTensorShape     = &Error{Code: StatusTensorShape}
	ErrUnsupported     = &Error{Code: StatusUnsupported}
	ErrNoTokenizer     = &Error{Code: StatusNoTokenizer}
	ErrNoWeights       = &Error{Code: StatusNoWeights}
	ErrInvalidUTF8     = &Error{Code: StatusInvalidUTF8}
	ErrInvalidToken    = &Error{Code: StatusInvalidToken}
	ErrTemplate        = &Error{Code: StatusTemplate}
	ErrBufferTooSmall  = &Error{Code: StatusBufferTooSmall}
	ErrContextFull     = &Error{Code: StatusContextFull}
	ErrCancelled       = &Error{Code: StatusCancelled}
	ErrInternal        = &Error{Code: StatusInternal}
	// ErrNotFound: a path does not exist. Errors matching it also match
	// fs.ErrNotExist and ErrIO.
	ErrNotFound      = &Error{Code: StatusNotFound}
	ErrModelMismatch = &Error{Code: StatusModelMismatch}

	// ErrClosed matches errors from calls on a closed Model, Context,
	// Session, Sampler or DetokStream; they also match ErrInvalidArgument.
	ErrClosed = &Error{Code: StatusInvalidArgument, Message: "use of a closed object", closed: true}
)

// lastError builds the Error of a failed status with the calling thread's
// gemfa_last_error text. Call it on the goroutine (and, cgo guarantees, the
// OS thread) that made the failing call, right after it.
func lastError(st C.gemfa_status) error {
	if st == C.GEMFA_OK {
		return nil
	}
	return &Error{Code: Status(st), Message: C.GoString(C.gemfa_last_error())}
}

func closedError(what string) error {
	return &Error{Code: StatusInvalidArgument, Message: what + " is closed", closed: true}
}

func argError(format string, args ...interface{}) error {
	return &Error{Code: StatusInvalidArgument, Message: fmt.Sprintf(format, args...)}
}
