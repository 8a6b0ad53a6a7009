package gemfa

/*
#include <gemfa.h>
*/
import "C"

// Aliases so that files without cgo can name the C types they pass around.
type (
	cSession = C.gemfa_session
	cStatus  = C.gemfa_status
)

// decodeNoLogits is gemfa_decode without a logits out-pointer (generation
// reads the logits in place through the sampler).
func decodeNoLogits(cs *cSession, ids []int32) cStatus {
	return C.gemfa_decode(cs, idsPtr(ids), C.size_t(len(ids)), nil)
}
