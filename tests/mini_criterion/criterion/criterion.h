/* criterion/criterion.h for builds with -Dmini_criterion=true (the aarch64
 * pass, tests/run_aarch64.sh): the test files include Criterion's header,
 * and this include directory answers with the in-process stand-in. */
#ifndef REL_MINI_CRITERION
#define REL_MINI_CRITERION 1
#endif
#include "../../reliability/rel_criterion.h"
