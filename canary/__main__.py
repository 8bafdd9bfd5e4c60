from canary.cli.app import main

main()
