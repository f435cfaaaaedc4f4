/*
 * A machine whose clock is off: preloaded (LD_PRELOAD) into a process, it adds
 * SKEWED_CLOCK_NS nanoseconds (negative: behind) to the wall clock the process
 * reads (clock_gettime's CLOCK_REALTIME, gettimeofday, time), as a host whose
 * clock has drifted would show it. The monotonic clocks, which timeouts and
 * sleeps count on, are left alone.
 *
 * libfaketime does this too, but version 0.9.10 (Debian 12's) cannot leave the
 * monotonic clock alone for Python 3.11 and later: time.sleep() fails with
 * EINVAL (wolfcw/libfaketime#426), and faking it hangs every timed wait.
 *
 * Built by tests/support/netns.py (`skewed_clock`) with the C compiler, `cc`.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long long skew_ns(void) {
    static int read;
    static long long skew;
    if (!read) {
        const char *value = getenv("SKEWED_CLOCK_NS");
        skew = value ? atoll(value) : 0;
        read = 1;
    }
    return skew;
}

static void shift(struct timespec *ts) {
    long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + skew_ns();
    ts->tv_sec = ns / 1000000000LL;
    ts->tv_nsec = ns % 1000000000LL;
}

int clock_gettime(clockid_t clock, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int result = real(clock, ts);
    if (result == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE))
        shift(ts);
    return result;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    static int (*real)(struct timeval *restrict, void *restrict);
    if (!real) real = (int (*)(struct timeval *restrict, void *restrict))dlsym(RTLD_NEXT, "gettimeofday");
    int result = real(tv, tz);
    if (result == 0) {
        struct timespec ts = {tv->tv_sec, tv->tv_usec * 1000L};
        shift(&ts);
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000L;
    }
    return result;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}
