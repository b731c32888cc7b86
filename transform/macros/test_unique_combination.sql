{% test unique_key_combination(model, columns) %}
{#- A composite key is unique (the same check as dbt_utils' unique_combination_of_columns,
    without a package download). -#}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
