#include <criterion/criterion.h>
Test(test_malformed, placeholder) { cr_assert(1); }
