from skinmask.cli.app import main

main()
