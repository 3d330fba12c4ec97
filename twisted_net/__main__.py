"""C{python -m twisted_net}: the C{twisted-net} client command."""

from .cli import main

if __name__ == "__main__":
    main()
