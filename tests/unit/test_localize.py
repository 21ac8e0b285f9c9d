"""localize_template: what the local deployment changes in the operators' template."""

from __future__ import annotations

from typing import Any

from infra_cdk.local.localize import localize_template


def _template(definition: Any) -> dict[str, Any]:
    return {
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {"DefinitionString": definition},
            },
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {}},
        }
    }


def _definition(template: dict[str, Any]) -> Any:
    local = localize_template(template, gateway_url="http://localhost:1")
    return local["Resources"]["Machine"]["Properties"]["DefinitionString"]


def test_a_sub_with_the_context_object_becomes_the_same_value_as_join_parts() -> None:
    text = (
        '{"At": "$$.State.EnteredTime", "Fn": "${FnArn}", "R": "${AWS::Region}", '
        '"A": "${Fn.Arn}", "L": "${!Literal}"}'
    )
    joined = _definition(_template({"Fn::Sub": [text, {"FnArn": {"Fn::GetAtt": ["Fn", "Arn"]}}]}))
    assert joined == {
        "Fn::Join": [
            "",
            [
                '{"At": "$$.State.EnteredTime", "Fn": "',
                {"Fn::GetAtt": ["Fn", "Arn"]},
                '", "R": "',
                {"Ref": "AWS::Region"},
                '", "A": "',
                {"Fn::GetAtt": ["Fn", "Arn"]},
                '", "L": "${Literal}"}',
            ],
        ]
    }


def test_a_sub_without_dollar_dollar_is_left_as_it_is() -> None:
    sub = {"Fn::Sub": ['{"Fn": "${FnArn}"}', {"FnArn": {"Ref": "Fn"}}]}
    assert _definition(_template(sub)) == sub


def test_the_dashboard_is_left_out_and_nothing_else() -> None:
    """Its alarm widget reads alarms' ARNs, which moto (it skips alarms) cannot resolve."""
    template = _template("{}")
    template["Resources"]["Alarm"] = {"Type": "AWS::CloudWatch::Alarm", "Properties": {}}
    template["Resources"]["Board"] = {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {"DashboardBody": {"Fn::Join": ["", [{"Fn::GetAtt": ["Alarm", "Arn"]}]]}},
    }
    local = localize_template(template, gateway_url="http://localhost:1")
    assert set(local["Resources"]) == {"Machine", "Fn", "Alarm"}
