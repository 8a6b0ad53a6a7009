package gemfa

/*
#include <gemfa.h>
#include "callbacks.h"
*/
import "C"

import (
	"sync"
	"sync/atomic"
)

// LogLevel is a gemfa_log_level.
type LogLevel int

// Log levels, most severe first.
const (
	LogError LogLevel = 0
	LogWarn  LogLevel = 1
	LogInfo  LogLevel = 2
	LogDebug LogLevel = 3
)

var (
	logMu sync.Mutex
	logFn atomic.Value // func(LogLevel, string)
)

// SetLogCallback sends libgemfa's log lines at maxLevel and more severe to
// fn. fn may be called from any goroutine or library thread, concurrently,
// so it must be safe for that. A nil fn silences the library (by default
// warnings and errors go to stderr).
func SetLogCallback(fn func(level LogLevel, msg string), maxLevel LogLevel) {
	logMu.Lock()
	defer logMu.Unlock()
	if fn == nil {
		C.gemfa_go_set_log(0, C.int(maxLevel))
		return
	}
	logFn.Store(fn)
	C.gemfa_go_set_log(1, C.int(maxLevel))
}

//export goLogCallback
func goLogCallback(level C.int, msg *C.char) {
	defer func() { _ = recover() }() // a panic must not unwind into C
	if fn, ok := logFn.Load().(func(LogLevel, string)); ok && fn != nil {
		fn(LogLevel(level), C.GoString(msg))
	}
}
