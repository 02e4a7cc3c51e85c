/**
 * The rjsf validator of the "New cluster" form: the server validates.
 *
 * The template's JSON Schema is validated once, on the server, which answers 400 naming the
 * field, the value and the bounds; the form shows that message at the field (`extraErrors`).
 * The browser needs no schema validator of its own, so none (such as ajv, which JupyterLab does
 * not share) is bundled: this one reports no errors and matches `oneOf`/`enum` choices by value,
 * which is all rjsf asks of a validator to render our schemas.
 *
 * One thing only the browser can see: a number field left blank or holding no number, which rjsf
 * drops from the form data, so the server would silently use the template's default
 * (`numberFieldErrors`).
 */
import type {
  ErrorSchema,
  RJSFSchema,
  RJSFValidationError,
  ValidationData,
  ValidatorType
} from '@rjsf/utils';
import { ReadonlyJSONObject } from '@lumino/coreutils';

export const serverSideValidator: ValidatorType<ReadonlyJSONObject> = {
  validateFormData(): ValidationData<ReadonlyJSONObject> {
    return { errors: [], errorSchema: {} };
  },

  toErrorList(
    errorSchema?: ErrorSchema<ReadonlyJSONObject>,
    fieldPath: string[] = []
  ): RJSFValidationError[] {
    if (!errorSchema) {
      return [];
    }
    const errors: RJSFValidationError[] = [];
    for (const [key, value] of Object.entries(errorSchema)) {
      if (key === '__errors' && Array.isArray(value)) {
        for (const message of value as string[]) {
          errors.push({ property: '.' + fieldPath.join('.'), message, stack: message });
        }
      } else if (value && typeof value === 'object') {
        errors.push(
          ...serverSideValidator.toErrorList(value as ErrorSchema<ReadonlyJSONObject>, [
            ...fieldPath,
            key
          ])
        );
      }
    }
    return errors;
  },

  isValid(schema: RJSFSchema, formData: ReadonlyJSONObject | undefined): boolean {
    if ('const' in schema) {
      return formData === schema.const;
    }
    if (Array.isArray(schema.enum)) {
      return schema.enum.includes(formData as never);
    }
    return true;
  },

  rawValidation() {
    return {};
  }
};

/**
 * The server's 400 error for one field, as rjsf's `extraErrors`; empty when no field is named.
 */
export function fieldError(field: string | null, message: string): ErrorSchema<ReadonlyJSONObject> {
  return field ? ({ [field]: { __errors: [message] } } as ErrorSchema<ReadonlyJSONObject>) : {};
}

/**
 * Field errors for the number fields of `schema` that `formData` lacks or holds as no number: a
 * cleared or mistyped field (rjsf drops it), which must not become the template's default.
 */
export function numberFieldErrors(
  schema: RJSFSchema,
  formData: ReadonlyJSONObject
): ErrorSchema<ReadonlyJSONObject> {
  const errors: Record<string, { __errors: string[] }> = {};
  for (const [field, spec] of Object.entries(schema.properties ?? {})) {
    if (typeof spec !== 'object' || (spec.type !== 'integer' && spec.type !== 'number')) {
      continue;
    }
    const value = formData[field];
    const integer = spec.type === 'integer';
    if (
      typeof value !== 'number' ||
      !Number.isFinite(value) ||
      (integer && !Number.isInteger(value))
    ) {
      errors[field] = { __errors: [numberFieldMessage(field, integer, spec.description)] };
    }
  }
  return errors as ErrorSchema<ReadonlyJSONObject>;
}

/**
 * `workers: enter a whole number; choose 0 to 4 workers`: what a blank or mistyped number field
 * says, worded as the server's refusals.
 */
export function numberFieldMessage(field: string, integer: boolean, bounds?: string): string {
  const kind = integer ? 'a whole number' : 'a number';
  return bounds ? `${field}: enter ${kind}; choose ${bounds}` : `${field}: enter ${kind}`;
}

/**
 * The whole number typed in an `<input type="number">`, or null for a blank or mistyped one
 * (`Number('')` would be 0).
 */
export function wholeNumber(text: string): number | null {
  const trimmed = text.trim();
  return /^-?\d+$/.test(trimmed) ? Number(trimmed) : null;
}
