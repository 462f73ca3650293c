from hourglass.cli import main

main()
