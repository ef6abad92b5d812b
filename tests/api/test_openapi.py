import json

import pytest


@pytest.mark.django_db
def test_openapi_schema_documents_every_task_operation_and_shared_key(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    operations = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    for name in (
        "Add_Task",
        "Add_Task_Collection",
        "Get_Task",
        "List_Tasks",
        "List_Subtasks",
        "Update_Task",
        "Terminate_Task",
        "Reactivate_Task",
        "Delete_Task",
        "Get_Job_Task_Counts",
    ):
        assert name in operations
    assert schema["components"]["securitySchemes"]["SharedKey"]["name"] == "Authorization"
    get_task = schema["paths"]["/jobs/{job_id}/tasks/{task_id}"]["get"]
    assert get_task["parameters"][0]["name"] == "api-version"
