/* The seedable generator: xoshiro256** (Blackman and Vigna) seeded through splitmix64, with
 * Box-Muller normals. Sequential and platform-independent, so a seed reproduces everywhere. */
#include <math.h>
#include <stdlib.h>

#include "tensor/tensor.h"

struct tg_rng {
    tg_rng_state st;
};

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

tg_rng *tg_rng_new(uint64_t seed) {
    tg_rng *r = malloc(sizeof *r);
    if (!r) {
        tg_set_last_error("rng_new: out of memory");
        return NULL;
    }
    for (int i = 0; i < 4; i++) r->st.s[i] = splitmix64(&seed);
    r->st.has_spare = false;
    r->st.spare_normal = 0.0;
    return r;
}

void tg_rng_free(tg_rng *rng) { free(rng); }

uint64_t tg_rng_u64(tg_rng *rng) {
    uint64_t *s = rng->st.s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double tg_rng_uniform(tg_rng *rng) {
    return (double)(tg_rng_u64(rng) >> 11) * 0x1.0p-53;
}

uint64_t tg_rng_below(tg_rng *rng, uint64_t n) {
    if (n == 0) return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n; /* reject the biased top */
    uint64_t x;
    do x = tg_rng_u64(rng);
    while (x >= limit);
    return x % n;
}

double tg_rng_normal(tg_rng *rng) {
    if (rng->st.has_spare) {
        rng->st.has_spare = false;
        return rng->st.spare_normal;
    }
    double u1 = 1.0 - tg_rng_uniform(rng); /* (0, 1]: log is finite */
    double u2 = tg_rng_uniform(rng);
    double r = sqrt(-2.0 * log(u1));
    rng->st.spare_normal = r * sin(2.0 * M_PI * u2);
    rng->st.has_spare = true;
    return r * cos(2.0 * M_PI * u2);
}

tg_rng_state tg_rng_get_state(const tg_rng *rng) { return rng->st; }

void tg_rng_set_state(tg_rng *rng, const tg_rng_state *state) { rng->st = *state; }
