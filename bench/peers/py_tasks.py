"""Python task module of bench section P: the same functions for slurmpool's Python workers and for multiprocessing."""


def identity(x):
    return x


def noop(_):
    return None


def is_prime(x):
    # Odd trial division up to sqrt(x), as bench/tasks.mjs (peers/mp_pool.py imports these).
    if x < 2:
        return False
    if x % 2 == 0:
        return x == 2
    d = 3
    while d * d <= x:
        if x % d == 0:
            return False
        d += 2
    return True


def count_primes(r):
    lo, hi = r
    return sum(1 for x in range(lo, hi) if is_prime(x))
