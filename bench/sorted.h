/* sorted.h - order statistics shared by the bench programs (header only). */
#ifndef HERALD_BENCH_SORTED_H
#define HERALD_BENCH_SORTED_H

#include <stdlib.h>

/* qsort() order of doubles, ascending. */
static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-quantile (0 to 1, nearest rank) of v[0..n) sorted ascending; -1 when empty. */
static inline double pct(const double *v, long n, double p)
{
    if (n == 0)
        return -1;
    long k = (long)(p * (double)(n - 1) + 0.5);
    return v[k];
}

/* The median of v[0..n), which it sorts; 0 when empty. */
static inline double median_of(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
