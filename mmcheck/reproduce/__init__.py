"""From a counterexample or a scripted scenario to a C program that runs it on the real
kernel (`mmcheck reproduce`), and the agreement table of model and kernel
(`mmcheck kernel-check`)."""
