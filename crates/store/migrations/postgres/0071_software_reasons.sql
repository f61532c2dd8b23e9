-- Why an unmatched software entry is not a product at all (apps Intune reported without a
-- name), shown beside it in the residue; NULL for products and ordinary unmatched names.
ALTER TABLE software_products ADD COLUMN reason TEXT;
