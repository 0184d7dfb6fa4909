"""Running scenarios and presenting results: verdicts and expectations, runs, traces and
their replay, rendering, comparisons, verdict tables, generated documentation."""
