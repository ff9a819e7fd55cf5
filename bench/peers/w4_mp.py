"""W4, multiprocessing: open a 2-worker pool (fork), run one trivial task, close, exit."""
import multiprocessing as mp


def noop(_):
    return None


if __name__ == "__main__":
    pool = mp.get_context("fork").Pool(2)
    pool.map(noop, [0])
    pool.close()
    pool.join()
