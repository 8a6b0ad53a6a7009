#!/usr/bin/python3
"""Independent reference for the sampler's generator (lib/sampling/rng.c):
xoshiro256** seeded by four splitmix64 outputs, uniform doubles from the top
53 bits.  Written from the published algorithms (Blackman & Vigna), not from
the C code.  Prints the values pinned in test_rng.c:
    /usr/bin/python3 tests/sampling/rng_reference.py
"""
M = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return state, z ^ (z >> 31)


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M


class Xoshiro256ss:
    def __init__(self, seed):
        self.s = []
        st = seed & M
        for _ in range(4):
            st, z = splitmix64(st)
            self.s.append(z)

    def next(self):
        s = self.s
        result = (rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.next() >> 11) * 2.0 ** -53


if __name__ == "__main__":
    for seed in (0, 42, 0xFFFFFFFFFFFFFFFF):
        g = Xoshiro256ss(seed)
        print("seed %#x: state" % seed, ", ".join("0x%016x" % v for v in g.s))
        print("  next:", ", ".join("0x%016x" % g.next() for _ in range(6)))
    g = Xoshiro256ss(7)
    print("seed 7 uniform:", ", ".join(g.uniform().hex() for _ in range(4)))
