from courriel.cli.main import main

if __name__ == "__main__":  # not when a worker process (backup) imports it
    main()
