// Compiled as C++17 with -pedantic -Werror and linked against libgemfa.so:
// the header works from C++ (extern "C", no C-only constructs).
#include <gemfa.h>

#include <cstdio>
#include <cstring>

int main()
{
    if (gemfa_version_number() != GEMFA_VERSION_NUMBER) {
        std::printf("version mismatch\n");
        return 1;
    }
    if (std::strcmp(gemfa_status_name(GEMFA_ERR_IO), "GEMFA_ERR_IO") != 0)
        return 1;
    gemfa_model *m = nullptr;
    gemfa_model_free(m);
    std::printf("ok\n");
    return 0;
}
