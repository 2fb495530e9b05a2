"""python -m ec2emu --host 127.0.0.1 --port 0 --ready-file PATH [--verbose]

Binds the port (0 = any free port), then writes the actual port to PATH (via PATH.tmp and a
rename, so a reader never sees a half-written file) and logs it to stderr. SIGTERM or SIGINT
stops it cleanly.
"""

import argparse
import logging


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ec2emu", description=__doc__.split("\n")[2])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--ready-file", help="write the bound port here once serving")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="ec2emu: %(message)s")

    from .server import serve  # imports moto: only after the arguments are known to be good

    serve(args.host, args.port, args.ready_file, args.verbose)


if __name__ == "__main__":
    main()
