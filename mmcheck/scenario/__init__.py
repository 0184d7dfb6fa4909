"""Scenario and policy files: the YAML layer with line numbers, the operation vocabulary,
validation into the parsed form, menus, and the JSON Schemas of the file formats."""
