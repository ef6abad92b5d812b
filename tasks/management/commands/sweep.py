import time

from django.core.management.base import BaseCommand

from tasks.operations.sweeps import run_sweeps


class Command(BaseCommand):
    help = "Run the service's periodic sweeps (180-day task lifetime, job purges, ...)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="run one pass and exit")
        parser.add_argument("--interval", type=float, default=30.0)

    def handle(self, *args, once=False, interval=30.0, **options):
        while True:
            counts = run_sweeps()
            if once:
                self.stdout.write(" ".join(f"{k}={v}" for k, v in counts.items()))
                return
            time.sleep(interval)
