"""The presets, the rig file and the topic map, edited here. pyproject maps this folder into
the wheel as the package `fusion.configs` (this file makes it one, also for setuptools'
editable finder); `fusion.config.CONFIG_DIR` says which copy a run reads."""
