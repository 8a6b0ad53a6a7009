/* Compiled with -std=c99 -pedantic -Werror: the public header is plain C99. */
#include <gemfa.h>
int header_c99_probe(void);
int header_c99_probe(void) { return GEMFA_OK + GEMFA_VERSION_NUMBER > 0; }
