from skinmask.cli.app import main

if __name__ == "__main__":  # spawned worker processes (Dask's LocalCluster) import this module too
    main()
