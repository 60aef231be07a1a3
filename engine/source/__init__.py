"""Reading (pass 1): YAML and JSON text → plain data with a source map, then file models.

Owns input files within a size limit and decoded as UTF-8 (`files`), the document and its source
map of spans (`document`), the YAML reader on libyaml with YAML 1.2 scalars (`yamlsource`,
`scalars`), the strict JSON reader with spans computed on demand (`jsonsource`), the rule-file
format as pydantic models (`model`), the package loader that follows `include:` inside the
package folder (`loader`), pydantic errors turned into located diagnostics (`validation`) and
fact files read into the package's fact models (`facts`), and fact schema files turned into
pydantic models (`factschema`). May import `engine.core` only; the
only folder that imports `yaml`.
"""
