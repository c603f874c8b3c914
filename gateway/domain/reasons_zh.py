"""Chinese wording for violation codes whose message has only English (XSD, XML, JSON and
spreadsheet checks), so a seller reading a batch result sees the reason in both languages.

The English message stays the precise one (it names the limit and the value); this says in
Chinese what kind of problem it is, next to the field at fault.
"""

from __future__ import annotations

_BY_CODE = {
    "schema.fixed_value": "取值必须为规定的固定值",
    "schema.length": "长度不符合规定",
    "schema.max_length": "超过允许的最大长度",
    "schema.min_length": "不能为空或长度不足",
    "schema.decimal": "必须是数字，且位数不超过规定",
    "schema.integer": "必须是整数",
    "schema.datatype": "取值类型不正确",
    "schema.range": "数值超出允许范围",
    "schema.pattern": "格式不正确",
    "schema.enumeration": "不是允许的代码值",
    "schema.missing_element": "缺少必填项",
    "schema.unexpected_element": "不应出现此项，或顺序不对",
    "schema.unexpected_content": "此处不允许有内容",
    "schema.missing_attribute": "缺少必需的属性",
    "schema.unexpected_attribute": "不允许此属性",
    "schema.max_occurs": "出现次数超过允许的上限",
    "schema.wrong_namespace": "命名空间不正确",
    "schema.unknown_root": "无法识别的报文类型",
    "schema.truncated": "报文不完整",
    "xml.malformed": "XML 格式错误",
    "xml.empty": "文件为空",
    "xml.encoding": "文件编码不正确",
    "xml.too_large": "文件超过大小限制",
    "xml.too_deep": "XML 层级过深",
    "xml.doctype_forbidden": "不允许 DOCTYPE 声明",
    "xml.entity_forbidden": "不允许实体声明",
    "xml.pi_forbidden": "不允许处理指令",
    "json.malformed": "JSON 格式错误",
    "json.shape": "JSON 结构不符合报文格式",
    "json.encoding": "文件编码不正确",
    "json.too_large": "文件超过大小限制",
    "batch.missing_column": "缺少必填列",
    "batch.unknown_column": "未知的列名",
    "batch.duplicate_column": "列名重复",
    "batch.cell_without_header": "单元格有值但没有列名",
    "batch.empty": "表格没有数据行",
    "batch.file_type": "只能申报 .xml 或 .json 文件",
    "batch.unknown_template": "无法识别表格模板",
    "batch.too_many_rows": "行数超过上限",
    "batch.too_many_items": "条目数超过上限",
    "batch.not_a_zip": "不是有效的 ZIP 压缩包",
    "batch.html": "这是网页文件，不是表格",
    "idempotency.key_reused": "幂等键已用于另一份上传",
    "csv.binary": "不是文本格式的 CSV 文件",
    "csv.empty": "CSV 文件为空",
    "csv.encoding": "CSV 编码无法识别（请用 UTF-8 或 GBK）",
    "csv.malformed": "CSV 格式错误",
    "xlsx.empty": "工作簿为空",
    "xlsx.unreadable": "不是有效的 XLSX 工作簿（Excel 2007 及以上）",
    "zip.bomb": "压缩比异常，拒绝解压",
    "zip.corrupt": "ZIP 压缩包已损坏",
    "zip.encrypted": "不支持加密的 ZIP 压缩包",
    "zip.size_mismatch": "ZIP 内文件大小与记录不符",
    "zip.too_large": "解压后超过大小限制",
    "zip.unsafe_path": "ZIP 内含不安全的文件路径",
    "upload.html": "这是网页文件，不是表格",
}
_BY_FAMILY = {
    "schema": "不符合报文格式规范（XSD）",
    "xml": "XML 文件有误",
    "json": "JSON 文件有误",
    "batch": "表格或压缩包有误",
    "csv": "CSV 文件有误",
    "xlsx": "XLSX 工作簿有误",
    "zip": "ZIP 压缩包有误",
}


def zh_reason(code: str, field: str | None = None) -> str:
    """The Chinese reason for ``code`` (with the field at fault first), or "" if unknown."""
    text = _BY_CODE.get(code) or _BY_FAMILY.get(code.partition(".")[0], "")
    if text and field:
        return f"{field}：{text}"
    return text
