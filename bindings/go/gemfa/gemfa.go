// Package gemfa runs Google's Gemma 3n language models (text decoder) on the
// CPU through libgemfa's C API.
//
//	m, err := gemfa.Load("path/to/gemma-3n", nil)
//	if err != nil { ... }
//	defer m.Close()
//	s, err := m.NewSession(&gemfa.SessionOptions{MaxContext: 4096, Threads: 2})
//	if err != nil { ... }
//	defer s.Close()
//	res, err := s.Generate(ctx, gemfa.UserMessage("سلام"), &gemfa.GenerateOptions{
//		MaxNewTokens: 64,
//		Sampling:     []gemfa.SamplerOption{gemfa.Temperature(0.7), gemfa.Seed(1)},
//	}, func(piece string) error {
//		fmt.Print(piece)
//		return nil
//	})
//
// Errors are *Error values carrying the status code; compare them with
// errors.Is against the sentinels (ErrContextFull, ErrCancelled, ...).
// Every type has an idempotent Close; finalizers free forgotten objects as a
// safety net. A Model is safe for concurrent use; a Context and its Sessions
// are serialized by a mutex (use one Context per goroutine for parallelism);
// a Sampler and a DetokStream are serialized too.
//
// Build: cgo finds libgemfa through pkg-config ("gemfa"): install libgemfa
// (meson install), point PKG_CONFIG_PATH at its lib/<arch>/pkgconfig, and let
// the dynamic loader find libgemfa.so.0 (LD_LIBRARY_PATH or an rpath).
package gemfa

/*
#cgo pkg-config: gemfa
#include <gemfa.h>
*/
import "C"

// Version returns the version string of the linked libgemfa, e.g. "0.1.0".
func Version() string { return C.GoString(C.gemfa_version_string()) }

// VersionNumber returns MAJOR*10000 + MINOR*100 + PATCH of the linked library.
func VersionNumber() int { return int(C.gemfa_version_number()) }

// HeaderVersionNumber is GEMFA_VERSION_NUMBER of the gemfa.h this package was
// compiled against.
const HeaderVersionNumber = int(C.GEMFA_VERSION_NUMBER)
