/* Compiled with -std=c11 -Wall -Wextra -pedantic -Werror: the public header
 * is clean C11 (static_assert checks the frozen layout of gemfa_message). */
#include <assert.h>
#include <stddef.h>
#include <gemfa.h>
static_assert(offsetof(gemfa_message, role) == 0, "gemfa_message.role moved");
static_assert(offsetof(gemfa_message, content) == sizeof(const char *), "content moved");
static_assert(offsetof(gemfa_message, content_len) == 2 * sizeof(const char *), "len moved");
static_assert(sizeof(gemfa_status) == sizeof(int), "gemfa_status is an int");
static_assert(GEMFA_ERR_INTERNAL == 17 && GEMFA_ERR_CANCELLED == 16, "status values are ABI");
static_assert(GEMFA_ERR_NOT_FOUND == 18, "status values are ABI");
int header_c11_probe(void);
int header_c11_probe(void) { return GEMFA_OK + GEMFA_VERSION_NUMBER > 0; }
