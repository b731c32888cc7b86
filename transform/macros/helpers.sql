{# Schema names as written: `analytics_staging`, `analytics_marts` (dbt's default joins
   the profile's schema and the model's); kept, so two projects can share a database. #}

{% macro calven_id(column) -%}
    {#- Calven ids compare case-insensitively (docs/contract.md §2): one spelling, lower case. -#}
    lower(cast({{ column }} as varchar))
{%- endmacro %}

{% macro utc_date(column) -%}
    {#- The UTC day of a loaded timestamp (the dbt sessions run in UTC: profiles.yml, PGTZ). -#}
    cast({{ column }} as date)
{%- endmacro %}

{% macro latest_row(relation, key_columns) -%}
    {#- One row per key: the latest load wins when the target kept several (a target that
        appends, or a re-load). The target's `_sdc_batched_at`, when it writes one, orders
        the loads; without it every row of a key is one load and any of them will do. -#}
    {%- set names = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
    {%- set order = '"_sdc_batched_at" desc' if '_sdc_batched_at' in names else '1' -%}
    select * from (
        select
            source_rows.*,
            row_number() over (
                partition by {% for k in key_columns %}{{ calven_id(k) }}{{ ", " if not loop.last }}{% endfor %}
                order by {{ order }}
            ) as _calven_row
        from {{ relation }} as source_rows
    ) as ranked
    where _calven_row = 1
{%- endmacro %}

{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}
    {%- else -%}{{ target.schema }}_{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
