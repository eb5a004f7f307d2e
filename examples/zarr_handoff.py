"""The Python side of examples/zarr_handoff.rs: dask reads the arrays Rust wrote, sums
a + b on a 2-process cluster, and writes d = 2 * a back, uncompressed, for Rust to map.

usage: python3 examples/zarr_handoff.py DIR     (the Rust example runs it)
"""
import sys
import warnings

warnings.simplefilter("ignore")

if __name__ == "__main__":
    import dask.array as da
    from dask.distributed import Client, LocalCluster

    d = sys.argv[1]
    a = da.from_zarr(f"{d}/a.zarr")
    b = da.from_zarr(f"{d}/b.zarr")
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cl, Client(cl):
        s = (a.astype("f8") + b).sum().compute()
        # Back to Rust: uncompressed, so every chunk file maps (zarr 3 takes `compressors`).
        # In chunks of dask's choosing, not Rust's: the Rust side streams across both grids.
        (a * 2).rechunk((10_000, 64)).to_zarr(f"{d}/d.zarr", compressors=None, overwrite=True)
    print(f"dask: read a.zarr and b.zarr ({a.shape}, chunks {a.chunksize}), (a + b).sum() = {float(s)!r}")
    print(f"dask: wrote d.zarr = 2 * a with compressors=None, in chunks of (10000, 64)")
    print(f"sum {float(s)!r}")
