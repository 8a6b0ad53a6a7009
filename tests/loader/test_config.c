#include <criterion/criterion.h>
Test(test_config, placeholder) { cr_assert(1); }
