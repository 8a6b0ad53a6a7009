/* schema.h — compiling a JSON Schema into the byte machine's nodes.
 *
 * Supported: type (a name or a list of names), properties, required,
 * additionalProperties (accepted; no extra keys are ever written, so the
 * output validates whatever its value), items, enum, const, minLength,
 * maxLength, minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers,
 * or draft-4 booleans), minItems, maxItems.  Annotations are ignored
 * (title, description, default, examples, $schema, $id, $comment,
 * readOnly, writeOnly, deprecated).  Every other keyword is
 * GEMFA_ERR_UNSUPPORTED naming the keyword and where it is.
 *
 * Decisions: properties are written in the schema's order (optional ones may
 * be left out); without "type" the keywords decide (properties/required:
 * object, items: array, lengths: string, bounds: number), else any value. */
#ifndef GF_SCHEMA_H
#define GF_SCHEMA_H

#include <stddef.h>

#include "constrain/jsm.h"

/* text[0..len) is the schema; len 0 (or the text "{}") means any JSON
 * value.  On success *m owns its arrays (gf_jsm_free).  Errors: FORMAT
 * (not JSON), INVALID_ARGUMENT (a keyword with a wrong value, an empty
 * range), UNSUPPORTED, OUT_OF_MEMORY; *m is then empty. */
gemfa_status gf_schema_compile(const char *text, size_t len, gf_jsm *m);

#endif
