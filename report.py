"""Compare runs: python report.py outputs/multirun/<time> [--sort "best val/fid"] (see docs/reports.md).

A table of the jobs (the overrides that differ, final and best val/fid, KID, coverage, accuracy, updates, wall
time, status), printed and written as report.csv and report.md; report_fid.png with the val/fid curves;
report_samples.png with each job's last sample grid."""

from ganlab.report import main

if __name__ == "__main__":
    main()
