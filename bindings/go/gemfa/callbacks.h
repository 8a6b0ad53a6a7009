/* callbacks.h — C trampolines from libgemfa's callbacks into Go.
 *
 * The Go side passes a runtime/cgo.Handle value as the callbacks' user
 * pointer; the integer <-> pointer conversion happens here, in C, so that the
 * Go code never turns a uintptr into an unsafe.Pointer. */
#ifndef GEMFA_GO_CALLBACKS_H
#define GEMFA_GO_CALLBACKS_H
#include <stdint.h>
#include <gemfa.h>

gemfa_status gemfa_go_set_cancel(gemfa_context_options *opts, uintptr_t handle);
gemfa_status gemfa_go_set_progress(gemfa_model_options *opts, uintptr_t handle);
/* gemfa_speculator_new_fn with a Go DraftFunc behind the handle. */
gemfa_status gemfa_go_speculator_new_fn(gemfa_session *target, uintptr_t handle, int k,
                                        gemfa_speculator **out);
/* on != 0: route log lines to Go; 0: silence the library. */
void gemfa_go_set_log(int on, int max_level);

#endif
