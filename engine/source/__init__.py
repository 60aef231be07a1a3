"""Reading (pass 1): YAML and JSON text → plain data with a source map, then file models.

Owns the YAML reader with line:col spans (`yamlsource`), the rule-file format as pydantic
models (`model`), the package loader that follows `include:` (`loader`), pydantic errors turned
into located diagnostics (`validation`) and fact files read into the package's fact models
(`facts`). May import `engine.core` only; the only folder that imports `yaml`.
"""
