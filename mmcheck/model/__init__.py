"""The MM model: state schema and codecs, the step table, the kernel steps, policies and
rules, symmetry; `MMModel` compiles a scenario under a policy for the explorer."""
