"""C{python -m twisted_net}: the C{twisted-net} client command."""

from twisted_net.cli.main import main

if __name__ == "__main__":
    main()
