from courriel.cli.main import main

main()
