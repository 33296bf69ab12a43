"""``python -m bench``: run the DM server benchmark."""

from bench.run import main

main()
