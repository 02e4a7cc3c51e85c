/**
 * The rjsf validator of the "New cluster" form: the server validates.
 *
 * The template's JSON Schema is validated once, on the server, which answers 400 naming the
 * field, the value and the bounds; the form shows that message at the field (`extraErrors`).
 * The browser needs no schema validator of its own, so none (such as ajv, which JupyterLab does
 * not share) is bundled: this one reports no errors and matches `oneOf`/`enum` choices by value,
 * which is all rjsf asks of a validator to render our schemas.
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
